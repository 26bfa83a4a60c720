// A workflow or action metadata held to GitHub's published schemas, as @action-validator/core
// bundles them: its problems, one line each, the alternatives of a oneOf indented below it.
import type { ValidationError, ValidationState } from '@action-validator/core';

function describeErrors(errors: ValidationError[], indent = ''): string[] {
  return errors.flatMap((error) => {
    // A parse error's detail says the line and column itself.
    const where = ('path' in error && error.path) || '/';
    const line = `${indent}${where}: ${error.detail ?? error.title}`;
    const alternatives = 'states' in error ? (error.states ?? []).map((state, i) => [`${indent}  alternative ${i + 1}:`, ...describeErrors(state.errors, `${indent}    `)]) : [];
    return [line, ...alternatives.flat()];
  });
}

export function problems(state: ValidationState): string {
  return describeErrors(state.errors).join('\n');
}
