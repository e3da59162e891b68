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
);
