/**
 * `anr completion bash|zsh`: a shell completion script made from the command tree, so that it
 * completes exactly the commands, options and choices the parser accepts.
 */
import { done, type Outcome } from "./common.js";

/** An option as completion needs it. */
export interface CompletionOption {
  /** Its spellings: "--out", and "-h" where it has a short form. */
  names: string[];
  /** Whether a value follows it. */
  takesValue: boolean;
  /** The values it accepts, when there is a fixed list. */
  choices?: readonly string[];
  description: string;
}

/** The command tree: the program's own (global) options and each command's. */
export interface CompletionTree {
  name: string;
  options: CompletionOption[];
  commands: { name: string; description: string; options: CompletionOption[]; choices?: readonly string[] }[];
}

export const SHELLS = ["bash", "zsh"] as const;

/** A word safe inside single quotes of a POSIX shell. */
const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The first sentence of a description, on one line. */
const brief = (s: string) =>
  s
    .split("\n")[0]!
    .replace(/\.\s.*$/, "")
    .trim();

function bashScript(t: CompletionTree): string {
  const fn = `_${t.name.replace(/\W/g, "_")}`;
  const all = [...t.options, ...t.commands.flatMap((c) => c.options)];
  const valued = [...new Set(all.filter((o) => o.takesValue).flatMap((o) => o.names))];
  const globals = t.options.flatMap((o) => o.names);
  /** `case "$prev"` arms completing the values of `options`; null when none takes a value. */
  const valueCases = (options: CompletionOption[], indent: string): string[] => {
    const arms = options
      .filter((o) => o.takesValue)
      .map(
        (o) =>
          `${indent}  ${o.names.join("|")}) COMPREPLY=($(compgen ${o.choices ? `-W ${sq(o.choices.join(" "))}` : "-f"} -- "$cur")); return ;;`,
      );
    return arms.length ? [`${indent}case "$prev" in`, ...arms, `${indent}esac`] : [];
  };
  const lines = [
    `# bash completion for ${t.name}, made by \`${t.name} completion bash\` from its command tree.`,
    `# Load it with: source <(${t.name} completion bash)   (or save it in ~/.local/share/bash-completion/completions/${t.name})`,
    `${fn}() {`,
    `  local cur prev cmd i w`,
    `  cur="\${COMP_WORDS[COMP_CWORD]}"`,
    `  prev="\${COMP_WORDS[COMP_CWORD-1]}"`,
    `  cmd=""`,
    `  # The command is the first word that is neither an option nor an option's value.`,
    `  for ((i = 1; i < COMP_CWORD; i++)); do`,
    `    w="\${COMP_WORDS[i]}"`,
    `    case "$w" in`,
    `      ${valued.join("|")}) ((i++)) ;;`,
    `      -*) ;;`,
    `      *) cmd="$w"; break ;;`,
    `    esac`,
    `  done`,
    ...valueCases(t.options, "  "),
    `  case "$cmd" in`,
    `    "") COMPREPLY=($(compgen -W ${sq([...t.commands.map((c) => c.name), ...globals].join(" "))} -- "$cur")) ;;`,
    ...t.commands.flatMap((c) => [
      `    ${c.name})`,
      ...valueCases(c.options, "      "),
      `      if [[ "$cur" == -* ]]; then`,
      `        COMPREPLY=($(compgen -W ${sq([...c.options.flatMap((o) => o.names), ...globals].join(" "))} -- "$cur"))`,
      `      else`,
      `        COMPREPLY=($(compgen ${c.choices ? `-W ${sq(c.choices.join(" "))}` : "-f"} -- "$cur"))`,
      `      fi ;;`,
    ]),
    `  esac`,
    `}`,
    `complete -o filenames -F ${fn} ${t.name}`,
  ];
  return lines.join("\n") + "\n";
}

/** An option as a zsh `_arguments` spec. */
function zshSpec(o: CompletionOption): string[] {
  const desc = brief(o.description).replaceAll("[", "(").replaceAll("]", ")");
  const action = !o.takesValue ? "" : o.choices ? `:value:(${o.choices.join(" ")})` : ":value:_files";
  const exclusive = o.names.length > 1 ? `(${o.names.join(" ")})` : "";
  return o.names.map((n) => sq(`${exclusive}${n}[${desc}]${action}`));
}

function zshScript(t: CompletionTree): string {
  const fn = `_${t.name.replace(/\W/g, "_")}`;
  const globals = t.options.flatMap(zshSpec);
  const lines = [
    `#compdef ${t.name}`,
    `# zsh completion for ${t.name}, made by \`${t.name} completion zsh\` from its command tree.`,
    `# Load it with: source <(${t.name} completion zsh)   (or save it as _${t.name} in a folder of $fpath)`,
    `${fn}() {`,
    `  local context state state_descr line`,
    `  typeset -A opt_args`,
    `  local -a commands`,
    `  commands=(`,
    ...t.commands.map((c) => `    ${sq(`${c.name}:${brief(c.description)}`)}`),
    `  )`,
    `  _arguments -C \\`,
    ...globals.map((g) => `    ${g} \\`),
    `    '1: :->command' \\`,
    `    '*:: :->args'`,
    `  case $state in`,
    `    command) _describe -t commands command commands ;;`,
    `    args)`,
    `      case $words[1] in`,
    ...t.commands.map((c) => {
      const rest = c.choices ? `'*:value:(${c.choices.join(" ")})'` : `'*:file:_files'`;
      return `        ${c.name}) _arguments ${[...c.options.flatMap(zshSpec), ...globals, rest].join(" ")} ;;`;
    }),
    `      esac ;;`,
    `  esac`,
    `}`,
    `if [[ $zsh_eval_context[-1] == loadautofunc ]]; then`,
    `  ${fn} "$@"`,
    `else`,
    `  compdef ${fn} ${t.name}`,
    `fi`,
  ];
  return lines.join("\n") + "\n";
}

/** Print the completion script of `shell`. */
export function cmdCompletion(shell: (typeof SHELLS)[number], tree: CompletionTree): Outcome {
  const script = shell === "bash" ? bashScript(tree) : zshScript(tree);
  console.log(script.trimEnd());
  return done({ shell, script });
}
