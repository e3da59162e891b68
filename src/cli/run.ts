/** The `anr` executable: run the command line and set the exit code. */
import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2));
