// moved to src/io/npy.ts and src/io/array-files.ts; re-export removed when importers move
export { writeNpy } from "../io/array-files.js";
