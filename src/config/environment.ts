import type { Config, EnvironmentConfig } from './schema.js';
import { InputError } from '../inputs.js';

export function selectEnvironment(config: Config, name: string): EnvironmentConfig {
  const known = Object.keys(config.environments).join(', ');
  if (!name) throw new InputError(`environment: required for this command (one of: ${known})`);
  const env = config.environments[name];
  if (!env) throw new InputError(`environment: ${JSON.stringify(name)} is not in the deploy config (one of: ${known})`);
  return env;
}
