// bench_hf.js TOKENIZER.json CORPUS.jsonl [REPEATS]: the same measurement as bench_tokenizer.c with
// Hugging Face tokenizers (npm "tokenizers", the official Node binding of the Rust library):
// documents encoded one at a time (add_special_tokens=false), best of REPEATS, and the same id hash.
const fs = require("fs");
const { Tokenizer } = require("tokenizers");

async function main() {
  const [file, corpus, rep] = process.argv.slice(2);
  const repeats = Number(rep) || 3;
  let t0 = process.hrtime.bigint();
  const tk = Tokenizer.fromFile(file);
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  const docs = fs.readFileSync(corpus, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
  const bytes = docs.reduce((s, d) => s + Buffer.byteLength(d), 0);
  let best = Infinity, bestCpu = Infinity, hash = 0n, nIds = 0;
  const M = (1n << 64n) - 1n;
  for (let r = 0; r < repeats; r++) {
    const all = [];
    t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    for (const d of docs) all.push((await tk.encode(d, null, { addSpecialTokens: false })).getIds());
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const cu = process.cpuUsage(c0), dc = (cu.user + cu.system) / 1e6; // all threads of the process
    if (dt < best) best = dt;
    if (dc < bestCpu) bestCpu = dc;
    hash = 1469598103934665603n;
    nIds = 0;
    for (const ids of all) {
      nIds += ids.length;
      for (const id of ids) hash = ((hash ^ BigInt(id)) * 1099511628211n) & M;
    }
  }
  console.log(JSON.stringify({ impl: "hf-tokenizers-node", load_s: +loadS.toFixed(3), docs: docs.length, bytes,
    ids: nIds, hash: hash.toString(16).padStart(16, "0"), encode_s: +best.toFixed(3), mb_per_s: +(bytes / best / 1e6).toFixed(2),
    mb_per_s_cpu: +(bytes / bestCpu / 1e6).toFixed(2) }));
}
main();
