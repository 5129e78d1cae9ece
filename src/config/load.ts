// Finding and reading the config file (cosmiconfig, module name "mirror"), then validating and resolving
// it. Every failure is a ConfigError naming the file and, for content, the line or JSON path.

import { existsSync } from 'node:fs';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { cosmiconfig, defaultLoaders, type Loader } from 'cosmiconfig';
import { ConfigError, whyUnreadable } from '../errors.js';
import { ConfigValidationError, configErrorMap, displayPath, issuesFromZod } from './issues.js';
import { JsonSyntaxError, parseJsonText } from './json-text.js';
import { type ResolvedConfig, resolveConfig } from './resolve.js';
import { type Config, configSchema } from './schema.js';

export const MODULE_NAME = 'mirror';

/**
 * Where a config is looked for, first found wins, in the working directory only: a config decides what
 * is pushed where, so one picked up from a parent directory by accident would be a bad surprise.
 * mirror.config.ts is not here: cosmiconfig compiles it with the `typescript` package at run time, which
 * regmirror does not ship. mirror.config.mjs with a JSDoc type does the same job.
 */
export const SEARCH_PLACES = [
  'package.json',
  `.${MODULE_NAME}rc`,
  `.${MODULE_NAME}rc.json`,
  `.${MODULE_NAME}rc.yaml`,
  `.${MODULE_NAME}rc.yml`,
  `${MODULE_NAME}.config.json`,
  `${MODULE_NAME}.config.js`,
  `${MODULE_NAME}.config.mjs`,
];

export interface LoadOptions {
  /** An explicit file (--config); otherwise the search places in `cwd`. */
  file?: string;
  /** Default process.cwd(). Relative `file` paths are resolved against it. */
  cwd?: string;
}

export interface LoadedConfig {
  /** Absolute path of the file the config came from. */
  filepath: string;
  config: ResolvedConfig;
}

/** "  12 |   "tags": [1.0,]" and a caret under the column. */
function codeFrame(text: string, line: number, column: number): string {
  const content = text.split(/\r?\n/)[line - 1] ?? '';
  const gutter = String(line);
  const pad = content.slice(0, column - 1).replace(/[^\t]/g, ' ');
  return `  ${gutter} | ${content}\n  ${' '.repeat(gutter.length)} | ${pad}^`;
}

function syntaxError(
  file: string,
  format: string,
  text: string,
  line: number,
  column: number,
  reason: string,
) {
  return new ConfigError(
    `config ${file}:${line}:${column}: invalid ${format}: ${reason}\n${codeFrame(text, line, column)}`,
  );
}

interface YamlException {
  reason?: string;
  mark?: { line: number; column: number };
}

function loadersFor(cwd: string): Record<string, Loader> {
  const shown = (filepath: string) => displayPath(filepath, cwd);
  const json: Loader = (filepath, content) => {
    try {
      return parseJsonText(content);
    } catch (err) {
      if (!(err instanceof JsonSyntaxError)) throw err;
      throw syntaxError(shown(filepath), 'JSON', content, err.line, err.column, err.reason);
    }
  };
  const yaml: Loader = async (filepath, content) => {
    try {
      return await defaultLoaders['.yaml'](filepath, content);
    } catch (err) {
      const { reason, mark } = err as YamlException;
      if (!mark) throw err;
      // js-yaml counts from 0.
      const line = mark.line + 1;
      const column = mark.column + 1;
      throw syntaxError(shown(filepath), 'YAML', content, line, column, reason ?? 'syntax error');
    }
  };
  const javascript: Loader = async (filepath, content) => {
    try {
      return await defaultLoaders['.js'](filepath, content);
    } catch (err) {
      throw new ConfigError(`config ${shown(filepath)} could not be loaded: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
  const typescript: Loader = (filepath) => {
    throw new ConfigError(
      `config ${shown(filepath)}: TypeScript config files are not supported (compiling them needs the ` +
        'typescript package at run time); write mirror.config.mjs or mirror.config.json instead',
    );
  };
  return {
    '.json': json,
    '.yaml': yaml,
    '.yml': yaml,
    noExt: yaml,
    '.js': javascript,
    '.mjs': javascript,
    '.cjs': javascript,
    '.ts': typescript,
    '.mts': typescript,
    '.cts': typescript,
  };
}

function notFound(cwd: string): ConfigError {
  const places = SEARCH_PLACES.map((p) =>
    p === 'package.json' ? `a "${MODULE_NAME}" key in package.json` : p,
  );
  const ts = existsSync(resolvePath(cwd, `${MODULE_NAME}.config.ts`))
    ? ` (${MODULE_NAME}.config.ts is there, but TypeScript configs are not supported: rename it to ${MODULE_NAME}.config.mjs)`
    : '';
  return new ConfigError(
    `no config file found in ${cwd}${ts}; looked for ${places.join(', ')}. ` +
      'Create mirror.config.json (mirror.config.example.json shows one) or pass --config FILE',
  );
}

function readFailure(file: string, err: unknown): ConfigError {
  return new ConfigError(`config file ${file} ${whyUnreadable(err)}`, { cause: err });
}

/**
 * Validate a config already read from `file` (which is only named in messages). Throws
 * ConfigValidationError listing every problem found.
 */
export function validateConfig(input: unknown, file: string): Config {
  const result = configSchema.safeParse(input, { error: configErrorMap });
  if (result.success) return result.data;
  let issues = issuesFromZod(configSchema, result.error);
  // In package.json the config lives under "mirror": paths should say so.
  if (basename(file) === 'package.json')
    issues = issues.map((i) => ({ ...i, path: [MODULE_NAME, ...i.path] }));
  throw new ConfigValidationError(file, issues);
}

/** Find (or read `options.file`), validate and resolve the config. */
export async function loadConfig(options: LoadOptions = {}): Promise<LoadedConfig> {
  const cwd = resolvePath(options.cwd ?? process.cwd());
  const explorer = cosmiconfig(MODULE_NAME, {
    searchPlaces: SEARCH_PLACES,
    searchStrategy: 'none',
    loaders: loadersFor(cwd),
    cache: false,
  });

  let result: Awaited<ReturnType<typeof explorer.search>>;
  if (options.file !== undefined) {
    const filepath = resolvePath(cwd, options.file);
    try {
      result = await explorer.load(filepath);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined && /^E[A-Z]+$/.test(code)) throw readFailure(displayPath(filepath, cwd), err);
      throw new ConfigError(
        `config ${displayPath(filepath, cwd)} could not be loaded: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  } else {
    result = await explorer.search(cwd);
  }
  if (!result) {
    // load() answers null for a package.json without a "mirror" key.
    if (options.file !== undefined) {
      throw new ConfigError(
        `config ${options.file} has no "${MODULE_NAME}" key; add one, or use mirror.config.json`,
      );
    }
    throw notFound(cwd);
  }

  const file = displayPath(result.filepath, cwd);
  if (result.isEmpty || result.config === undefined || result.config === null) {
    throw new ConfigError(
      `config ${file} is empty; it needs at least "mirrors" (mirror.config.example.json shows one)`,
    );
  }
  const config = validateConfig(result.config, file);
  return { filepath: result.filepath, config: resolveConfig(config, { baseDir: dirname(result.filepath) }) };
}
