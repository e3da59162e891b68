/** The `anr` executable: run the command line and set the exit code. */
// First: the Node worker pool must exist before jax-js is evaluated (see src/backend/install-worker.ts).
import "../backend/install-worker.js";
import { main } from "./main.js";
import { setAttentionForm } from "../model/model.js";

// ANR_ATTENTION=direct|folded forces a form of the attention (for benchmarks and checks).
const form = process.env.ANR_ATTENTION;
if (form === "direct" || form === "folded") setAttentionForm(form);

process.exitCode = await main(process.argv.slice(2));
