// `regmirror completion bash|zsh|fish`: shell completion scripts made from the commander program itself,
// so a new command or option is completed without anyone remembering to edit a script. Commands,
// subcommands (auth check), every option a command lists in --help plus the global ones, the choices an
// option has (--format, completion's shell), and file names after options that take a file.

import type { Command, Option } from 'commander';

/** Options whose value is a path: the shell completes file names there. */
const FILE_OPTIONS = new Set(['--config', '--audit-log', '--metrics-file', '--authfile']);

interface Spec {
  /** "copy", or "auth check" for a subcommand. */
  path: string[];
  description: string;
  options: Option[];
  /** Choices of the first argument (completion's shell), if it has any. */
  choices: string[];
  subcommands: readonly Command[];
}

function visibleOptions(cmd: Command): Option[] {
  return cmd.options.filter((o) => !o.hidden);
}

function specs(program: Command): Spec[] {
  const out: Spec[] = [];
  const walk = (cmd: Command, path: string[]) => {
    for (const sub of cmd.commands) {
      const p = [...path, sub.name()];
      out.push({
        path: p,
        description: sub.description(),
        options: visibleOptions(sub),
        choices: sub.registeredArguments[0]?.argChoices ?? [],
        subcommands: sub.commands,
      });
      walk(sub, p);
    }
  };
  walk(program, []);
  return out;
}

function flagsOf(o: Option): string[] {
  return [o.short, o.long].filter((f): f is string => f !== undefined);
}

function takesValue(o: Option): boolean {
  return o.required || o.optional;
}

/** A description on one line without the characters each shell's syntax gives a meaning to. */
function plain(text: string): string {
  return text
    .replace(/[\n'"`$\\[\]:]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function bash(program: Command): string {
  const all = specs(program);
  const globals = visibleOptions(program).filter((o) => o.long !== '--version');
  const globalWords = globals.flatMap(flagsOf).join(' ');
  const valued = [...globals, ...all.flatMap((s) => s.options)].filter(takesValue).flatMap(flagsOf);
  const top = all.filter((s) => s.path.length === 1).map((s) => s.path[0]);
  const cases = all.map((s) => {
    const words = s.subcommands.length > 0 ? s.subcommands.map((c) => c.name()) : [];
    const options = [...s.options.flatMap(flagsOf), globalWords, '--help'].join(' ');
    const args = s.choices.length > 0 ? s.choices.join(' ') : words.join(' ');
    return `    '${s.path.join(' ')}')
      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W '${options}' -- "$cur"))
      else COMPREPLY=($(compgen -W '${args}' -- "$cur")); fi ;;`;
  });
  const choiceCases = [...globals, ...all.flatMap((s) => s.options)]
    .filter((o) => o.argChoices && o.long)
    .map((o) => `    ${o.long}) COMPREPLY=($(compgen -W '${o.argChoices!.join(' ')}' -- "$cur")); return ;;`);
  const uniqueChoiceCases = [...new Set(choiceCases)];
  return `# bash completion for regmirror. Load it with: source <(regmirror completion bash)
_regmirror() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local valued=" ${valued.join(' ')} "
  local cmd="" i w
  # The command (and subcommand) typed so far: words that are neither options nor option values.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ "$w" == -* ]]; then continue; fi
    if [[ "$valued" == *" \${COMP_WORDS[i-1]} "* ]]; then continue; fi
    case "$cmd" in
      '') cmd="$w" ;;
      auth) cmd="auth $w" ;;
      *) break ;;
    esac
  done
  case "$prev" in
    ${[...FILE_OPTIONS].join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
${uniqueChoiceCases.join('\n')}
  esac
  if [[ "$valued" == *" $prev "* ]]; then return; fi
  case "$cmd" in
    '')
      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W '${globalWords} --help --version' -- "$cur"))
      else COMPREPLY=($(compgen -W '${top.join(' ')}' -- "$cur")); fi ;;
${cases.join('\n')}
  esac
}
complete -o default -F _regmirror regmirror
`;
}

function zshOption(o: Option): string {
  const desc = plain(o.description);
  const value = takesValue(o)
    ? `:${plain(o.flags.split(' ').slice(-1)[0] ?? 'value').replace(/[<>]/g, '')}:${
        o.long && FILE_OPTIONS.has(o.long) ? '_files' : o.argChoices ? `(${o.argChoices.join(' ')})` : ' '
      }`
    : '';
  const repeat = o.variadic || /repeat/.test(o.description) ? '*' : '';
  if (o.short && o.long) return `'${repeat}(${o.short} ${o.long})'{${o.short},${o.long}}'[${desc}]${value}'`;
  return `'${repeat}${o.long ?? o.short}[${desc}]${value}'`;
}

function zsh(program: Command): string {
  const all = specs(program);
  const globals = visibleOptions(program).filter((o) => o.long !== '--version');
  const top = all.filter((s) => s.path.length === 1);
  const fn = (s: Spec) => `_regmirror_${s.path.join('_')}`;
  const functions = all.map((s) => {
    const opts = [...s.options, ...globals].map(zshOption);
    const rest =
      s.subcommands.length > 0
        ? [
            `'1: :((${s.subcommands.map((c) => `${c.name()}\\:${plain(c.description())}`).join(' ')}))'`,
            `'*:: :->sub'`,
          ]
        : s.choices.length > 0
          ? [`'1: :(${s.choices.join(' ')})'`]
          : [`'*: :_default'`];
    const sub =
      s.subcommands.length > 0
        ? `\n  case $state in\n    sub)\n      case $words[1] in\n${s.subcommands
            .map((c) => `        ${c.name()}) ${fn({ ...s, path: [...s.path, c.name()] })} ;;`)
            .join('\n')}\n      esac ;;\n  esac`
        : '';
    return `${fn(s)}() {\n  local state\n  _arguments -s \\\n    ${[...opts, ...rest].join(' \\\n    ')}${sub}\n}`;
  });
  return `#compdef regmirror
# zsh completion for regmirror. Install it with: regmirror completion zsh > "\${fpath[1]}/_regmirror"
# (or, for this shell only: source <(regmirror completion zsh))

${functions.join('\n\n')}

_regmirror() {
  local state
  _arguments -C -s \\
    ${[...globals.map(zshOption), "'(- *)'{-V,--version}'[print the version]'", "'1: :->command'", "'*:: :->args'"].join(' \\\n    ')}
  case $state in
    command)
      local -a commands
      commands=(
${top.map((s) => `        '${s.path[0]}:${plain(s.description)}'`).join('\n')}
      )
      _describe -t commands 'regmirror command' commands ;;
    args)
      case $words[1] in
${top.map((s) => `        ${s.path[0]}) ${fn(s)} ;;`).join('\n')}
      esac ;;
  esac
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _regmirror "$@"
else
  compdef _regmirror regmirror
fi
`;
}

function fishOption(o: Option, condition: string | undefined): string {
  const parts = ['complete -c regmirror'];
  if (condition) parts.push(`-n '${condition}'`);
  if (o.short) parts.push(`-s ${o.short.slice(1)}`);
  if (o.long) parts.push(`-l ${o.long.slice(2)}`);
  if (takesValue(o)) {
    if (o.long && FILE_OPTIONS.has(o.long)) parts.push('-r -F');
    else if (o.argChoices) parts.push(`-x -a '${o.argChoices.join(' ')}'`);
    else parts.push('-x');
  }
  parts.push(`-d '${plain(o.description)}'`);
  return parts.join(' ');
}

function fish(program: Command): string {
  const all = specs(program);
  const globals = visibleOptions(program).filter((o) => o.long !== '--version');
  const top = all.filter((s) => s.path.length === 1);
  const topNames = top.map((s) => s.path[0]).join(' ');
  /** Inside `path`, and (for a top-level command that is also a subcommand name) not inside another. */
  const inside = (s: Spec): string => {
    if (s.path.length === 2)
      return `__fish_seen_subcommand_from ${s.path[0]}; and __fish_seen_subcommand_from ${s.path[1]}`;
    const clash = all.filter((o) => o.path.length === 2 && o.path[1] === s.path[0]).map((o) => o.path[0]);
    return clash.length > 0
      ? `__fish_seen_subcommand_from ${s.path[0]}; and not __fish_seen_subcommand_from ${clash.join(' ')}`
      : `__fish_seen_subcommand_from ${s.path[0]}`;
  };
  const lines = [
    '# fish completion for regmirror. Install it with:',
    '#   regmirror completion fish > ~/.config/fish/completions/regmirror.fish',
    'complete -c regmirror -f',
    ...top.map(
      (s) =>
        `complete -c regmirror -n 'not __fish_seen_subcommand_from ${topNames}' -a ${s.path[0]} -d '${plain(s.description)}'`,
    ),
    "complete -c regmirror -n 'not __fish_seen_subcommand_from " +
      topNames +
      "' -s V -l version -d 'print the version'",
    ...globals.map((o) => fishOption(o, undefined)),
  ];
  for (const s of all) {
    for (const c of s.subcommands) {
      lines.push(
        `complete -c regmirror -n '__fish_seen_subcommand_from ${s.path.join(' ')}; and not __fish_seen_subcommand_from ${s.subcommands.map((x) => x.name()).join(' ')}' -a ${c.name()} -d '${plain(c.description())}'`,
      );
    }
    if (s.choices.length > 0)
      lines.push(`complete -c regmirror -n '${inside(s)}' -a '${s.choices.join(' ')}'`);
    for (const o of s.options) lines.push(fishOption(o, inside(s)));
  }
  return `${lines.join('\n')}\n`;
}

export function completionScript(program: Command, shell: 'bash' | 'zsh' | 'fish'): string {
  switch (shell) {
    case 'bash':
      return bash(program);
    case 'zsh':
      return zsh(program);
    case 'fish':
      return fish(program);
  }
}
