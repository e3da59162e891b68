/** The `anr` executable: run the command line and set the exit code. */
import { main } from "./main.js";
import { setAttentionForm } from "../model/model.js";

// ANR_ATTENTION=direct|folded forces a form of the attention (for benchmarks and checks).
const form = process.env.ANR_ATTENTION;
if (form === "direct" || form === "folded") setAttentionForm(form);

process.exitCode = await main(process.argv.slice(2));
