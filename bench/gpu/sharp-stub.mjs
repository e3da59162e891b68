// The GPU kit's stand-in for sharp (image decoding and encoding, a native package the kit does not
// carry): the benchmark reads no image file, so any use of it is an error that says so.
const sharp = () => {
  throw new Error("sharp is not in the GPU kit: the GPU benchmark reads and writes no image file");
};
export default sharp;
