// deploy.schema.json, generated from the very field readers the parser uses (schema.ts), so the
// editor's completion and checks follow the parser (scripts/write-schema.mjs writes it at build
// time; a unit test fails when the committed file is stale). What JSON Schema cannot say is left
// to the parser, which still reports it with the key path: a key a section requires (container.port,
// haproxy.backend) may come from the top level or from each environment, so only the merged result
// can be held to it; promote-from must name another environment; IP addresses are told apart from
// names by pattern only.
import { ENVIRONMENT_NAME, RESERVED_ROLE_NAMES, ROLE_NAME, SECTION_DESCRIPTIONS, buildSchema, environmentScalars, identity, overridable, roleSchema, topScalars } from './schema.js';
import { KEY_EXAMPLES } from './examples.js';
import type { JsonSchema, Schema } from './fields.js';

export const SCHEMA_ID = 'https://raw.githubusercontent.com/clay/deploy-action/v1/deploy.schema.json';

/** Each key's schema, description, default and example (examples.ts, by key path under `prefix`). */
function properties(schema: Schema, prefix = ''): Record<string, JsonSchema> {
  return Object.fromEntries(
    Object.entries(schema).map(([key, field]) => {
      const example = KEY_EXAMPLES[`${prefix}${key}`];
      return [
        key,
        { ...field.read.json, description: field.description, ...(field.kind === 'default' ? { default: field.fallback } : {}), ...(example === undefined ? {} : { examples: [example] }) },
      ];
    }),
  );
}

function section(schema: Schema, name: string, description: string, extra: JsonSchema = {}): JsonSchema {
  return { type: 'object', description, properties: properties(schema, `${name}.`), additionalProperties: false, ...extra };
}

/** Each overridable section; haproxy takes host or hosts, not both. */
function sections(): Record<string, JsonSchema> {
  return Object.fromEntries(
    Object.entries(overridable).map(([name, schema]) => [
      name,
      section(schema, name, SECTION_DESCRIPTIONS[name as keyof typeof overridable], name === 'haproxy' ? { not: { required: ['host', 'hosts'] } } : {}),
    ]),
  );
}

export const ROLES_DESCRIPTION =
  'Roles beside the web role (workers, schedulers), by name: the same release with another command, no port and no load balancer, moved after every web container is proven; a failure in any role rolls every role back. An environment\'s roles merge into these by name.';

/** `roles`: each role by name (the reserved names web, master and backup are the parser's). */
function roles(): JsonSchema {
  return {
    type: 'object',
    description: ROLES_DESCRIPTION,
    propertyNames: { pattern: ROLE_NAME.source, not: { enum: RESERVED_ROLE_NAMES } },
    additionalProperties: section(roleSchema, 'roles.*', 'One role: its command, hosts, variables, containers per host, stop timeout and readiness.'),
  };
}

export function deployConfigJsonSchema(): JsonSchema {
  const environment: JsonSchema = {
    type: 'object',
    description: 'One environment: its hosts, its gates, and any section it overrides (mappings merge key by key, lists replace).',
    properties: { ...properties(environmentScalars, 'environments.*.'), ...sections(), roles: roles(), ...properties(topScalars) },
    required: ['hosts'],
    additionalProperties: false,
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: SCHEMA_ID,
    title: 'deploy-action config (.github/deploy.yml)',
    description: 'What clay/deploy-action builds and where it deploys it. Generated from the action\'s config parser: do not edit.',
    type: 'object',
    properties: {
      ...properties(identity),
      build: section(buildSchema, 'build', SECTION_DESCRIPTIONS.build),
      ...sections(),
      roles: roles(),
      ...properties(topScalars),
      environments: {
        type: 'object',
        examples: [KEY_EXAMPLES.environments],
        description: 'The environments, by name (staging, production, ...).',
        minProperties: 1,
        propertyNames: { pattern: ENVIRONMENT_NAME.source },
        additionalProperties: environment,
      },
    },
    required: ['app', 'image', 'environments'],
    additionalProperties: false,
  };
}
