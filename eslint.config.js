import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

/**
 * The layers of src/, lowest first: a module imports only from its own layer or lower ones
 * (model and rendering share a layer). A new upward import fails lint.
 */
const LAYERS = [
  ["util"],
  ["backend"],
  ["model", "rendering"],
  ["io"],
  ["data"],
  ["eval"],
  ["training"],
  ["golden"],
  ["api"],
  ["batch"],
  ["cli"],
];
const layerRules = LAYERS.map((layer, i) => {
  const above = LAYERS.slice(i + 1).flat();
  return {
    files: layer.map((dir) => `src/${dir}/**/*.ts`),
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: above.length
            ? [
                {
                  group: above.map((dir) => `**/${dir}/*`),
                  message: `src/${layer.join(", src/")} may import only from lower layers (${LAYERS.map((l) => l.join("/")).join(" → ")})`,
                },
              ]
            : [],
        },
      ],
    },
  };
});

/**
 * Within src/cli, a command file imports no other command: what commands share lives in
 * cli/common.ts. Only the dispatcher (main.ts) and the entry point (run.ts) import commands.
 */
const cliCommandRule = {
  files: ["src/cli/**/*.ts"],
  ignores: ["src/cli/main.ts", "src/cli/run.ts"],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: [
          {
            group: ["./*", "!./common.js"],
            message:
              "a src/cli command imports no other command file; shared CLI helpers go in src/cli/common.ts",
          },
        ],
      },
    ],
  },
};

/**
 * Dynamic imports: the layer rule above sees only static imports, so in src/ a dynamic `import()`
 * may load only a package (an optional or heavy dependency, loaded on first use: onnxruntime-node,
 * h5wasm), named by a string literal; our own modules are imported statically, where the layer
 * rule checks them. The same holds for `import("…")` types.
 */
const dynamicImportSelectors = [
  {
    selector: "ImportExpression:not([source.type='Literal'])",
    message: "a dynamic import in src/ names its module with a string literal",
  },
  {
    selector: "ImportExpression[source.value=/^[.\\/]/]",
    message:
      "src/ modules import each other statically (the layer rule checks only static imports); a dynamic import may load only a package",
  },
  {
    selector: "TSImportType[argument.literal.value=/^[.\\/]/]",
    message: "use a static `import type` for a type from our own modules (the layer rule checks only those)",
  },
];

/**
 * The environment is read once, at the top: by the CLI (src/cli/) and the Node entry files
 * (src/node-startup.ts, src/node-threads.ts), which pass the values down as arguments. A
 * `process.env` read anywhere else in src/ is an error.
 */
const ENV_READERS = ["src/cli/**/*.ts", "src/node-startup.ts", "src/node-threads.ts"];
const envMessage =
  "only src/cli/ and the Node entry files (src/node-startup.ts, src/node-threads.ts) read the environment; take the value as an argument";
const envRules = [
  {
    files: ["src/**/*.ts"],
    ignores: ENV_READERS,
    rules: {
      "no-restricted-properties": ["error", { object: "process", property: "env", message: envMessage }],
      "no-restricted-syntax": [
        "error",
        ...dynamicImportSelectors,
        { selector: "ImportDeclaration[source.value=/^(node:)?process$/]", message: envMessage },
      ],
    },
  },
  { files: ENV_READERS, rules: { "no-restricted-syntax": ["error", ...dynamicImportSelectors] } },
];

export default tseslint.config(
  {
    ignores: [
      "dist/**",
      "docs/api/**",
      "node_modules/**",
      "runs/**",
      "bin/**",
      "reports/**",
      ".stryker-tmp/**",
      "web/dist/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  ...layerRules,
  cliCommandRule,
  ...envRules,
);
