// moved to src/io/netcdf*.ts, src/io/hdf5-reader.ts and src/io/array-files.ts; re-export removed when importers move
export { writeNetcdf3 } from "../io/array-files.js";
