import { numpy as np, nn, lax } from "./src/backend/jax.js";
import { initBackend } from "./src/backend/index.js";
await initBackend();
const n = 100000;
const xs = new Float32Array(n); for (let i = 0; i < n; i++) xs[i] = Math.fround((i / n) * 8000 - 4000);
const c = await np.cos(np.array(xs)).data(); const s = await np.sin(np.array(xs)).data();
let ec = 0, es = 0; for (let i = 0; i < n; i++) { ec = Math.max(ec, Math.abs(c[i] - Math.cos(xs[i]))); es = Math.max(es, Math.abs(s[i] - Math.sin(xs[i]))); }
console.log("cos/sin max err at |x|<4000", ec, es);
const e = await lax.erf(np.array([0.1, 1, -2])).data(); console.log("erf", e, [0.1124629160, 0.8427007929, -0.9953222650]);
console.log(nn.gelu.length, String(nn.gelu).slice(0, 100));
const g = await nn.gelu(np.array([1, -0.5]), { approximate: false } as any).data(); console.log("gelu", g, [0.8413447, -0.1542687]);
const a = np.arange(24).astype(np.float32).reshape([2, 3, 4]);
console.log(a.ref.slice([], [], [0, 2]).shape, np.split(a.ref, 2, -1).map((t: np.Array) => t.shape));
console.log(np.einsum("bij,bjk->bik", np.ones([2,3,4]), np.ones([2,4,5])).shape);
console.log(np.matmul(np.ones([2,3,4]), np.ones([4,5])).shape);
