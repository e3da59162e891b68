/** The `anr` executable: run the command line and set the exit code. */
// First: the worker pool and the environment switches (src/node-startup.ts).
import "../node-startup.js";
import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2));
