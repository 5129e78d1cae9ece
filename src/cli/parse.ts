// Turning command-line strings into typed values, with errors that say which argument was wrong.

import { InvalidReferenceError } from '../errors.js';
import {
  parseReference,
  parseRepository,
  type Reference,
  ReferenceSyntaxError,
  type Repository,
} from '../reference/reference.js';

export function parseRef(text: string, what: string, defaultTag: string | null = 'latest'): Reference {
  try {
    return parseReference(text, { defaultTag });
  } catch (err) {
    if (err instanceof ReferenceSyntaxError) throw new InvalidReferenceError(`${what}: ${err.message}`);
    throw err;
  }
}

export function parseRepo(text: string, what: string): Repository {
  try {
    return parseRepository(text);
  } catch (err) {
    if (err instanceof ReferenceSyntaxError) throw new InvalidReferenceError(`${what}: ${err.message}`);
    throw err;
  }
}
