/**
 * StrykerJS mutation testing (issue 17): the broad, automatic complement to the hand-written
 * mutation list of test/mutations/*.yaml (scripts/mutants.ts). Stryker has no node:test runner, so
 * each config uses the `command` runner: one instrumented sandbox (mutation switching), and per
 * mutant the command reruns with __STRYKER_ACTIVE_MUTANT__ set. One config per source file (or
 * pair), because a config has one command and each file should run only the tests that exercise
 * it. The TypeScript checker first drops mutants that do not compile (they count as
 * "compile errors", outside the score), since tsx would run them without type checking.
 *
 *   npm run test:stryker                              # every config in sequence (on demand; not CI)
 *   npx stryker run stryker/optim.config.mjs          # one config
 *   npx stryker run stryker/ssim.config.mjs --mutate src/eval/ssim.ts:120-140   # a line range
 *
 * Reports: clear text and progress on the terminal, JSON in reports/stryker/<name>.json (ignored
 * by git). The sandbox lives in .stryker-tmp/ (ignored; removed after a run), node_modules is
 * symlinked into it, test/golden is copied with the other tracked files.
 */

/** Test command: node:test through tsx, as `npm test`, one file or a few, optionally a name pattern. */
export function nodeTest(files, pattern) {
  const p = pattern ? ` --test-name-pattern="${pattern}"` : "";
  return `node --import tsx --import ./test/setup.ts --test --test-reporter=dot${p} ${files.join(" ")}`;
}

/**
 * @param {string} name report name (reports/stryker/<name>.json)
 * @param {string[]} mutate files (or file:lines) to mutate
 * @param {string} command the tests that should notice a mutant there
 * @returns {import("@stryker-mutator/api/core").PartialStrykerOptions}
 */
export function strykerConfig(name, mutate, command) {
  return {
    $schema: "../node_modules/@stryker-mutator/core/schema/stryker-schema.json",
    packageManager: "npm",
    testRunner: "command",
    commandRunner: { command },
    coverageAnalysis: "off",
    mutate,
    checkers: ["typescript"],
    tsconfigFile: "tsconfig.json",
    // Per-mutant limit: the unmutated run's time × 1.5 + 10 s (tests here take 2–4 s; the
    // extra allows for a second engineer sharing the 2 cores). Infinite-loop mutants end here.
    timeoutFactor: 1.5,
    timeoutMS: 10000,
    // Measured on 2 shared cores: see stryker/README.md.
    concurrency: 1,
    tempDirName: ".stryker-tmp",
    ignorePatterns: ["/dist", "/runs", "/reports", "/.cache"],
    reporters: ["clear-text", "progress", "json"],
    jsonReporter: { fileName: `reports/stryker/${name}.json` },
    clearTextReporter: { allowColor: false, logTests: false },
    thresholds: { high: 90, low: 75, break: null },
  };
}
