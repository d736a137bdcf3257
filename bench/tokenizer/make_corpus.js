// make_corpus.js OUT.jsonl [MB]: writes a mixed-text benchmark corpus, one {"text": ...} document per
// line, interleaved in ~4 KB documents: 40% English prose (Debian license and copyright texts), 40%
// source code (Python stdlib, C headers), 20% other languages (Debian's translated man pages in
// Chinese, Japanese, Korean, Russian, German, French; Vim's tutor in 30 languages; the tokenizer
// golden texts with their emoji and accents). All from files every Debian system has.
const fs = require("fs");
const zlib = require("zlib");
const path = require("path");
const out = process.argv[2];
const target = (Number(process.argv[3]) || 8) * 1e6;
const golden = path.join(__dirname, "../../tests/fixtures/tokenizer/qwen.jsonl");

function files(dir, re, limit) {
  const res = [];
  const walk = (d) => {
    let ents = [];
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch (e) { return; }
    ents.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of ents) {
      if (res.length >= limit) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (re.test(e.name)) res.push(p);
    }
  };
  walk(dir);
  return res;
}
function read(p) {
  try {
    const b = fs.readFileSync(p);
    return (p.endsWith(".gz") ? zlib.gunzipSync(b) : b).toString("utf8");
  } catch (e) {
    return "";
  }
}

const prose = files("/usr/share/common-licenses", /./, 100).map(read)
  .concat(files("/usr/share/doc", /^copyright$/, 400).map(read)).join("\n");
const pyDir = fs.readdirSync("/usr/lib").filter((d) => /^python3\.\d+$/.test(d)).sort()[0];
const code = files(path.join("/usr/lib", pyDir || "python3"), /\.py$/, 300).map(read)
  .concat(files("/usr/include", /\.h$/, 300).map(read)).join("\n");
const langs = ["zh_CN", "zh_TW", "ja", "ko", "ru", "de", "fr"];
const multi = langs.map((l) => files("/usr/share/man/" + l, /\.gz$/, 60).map(read).join("\n"))
  .concat(files("/usr/share/vim", /^tutor\..*utf-8$/, 100).map(read))
  .concat(fs.readFileSync(golden, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).text)).join("\n");

// Interleave 40/40/20, cut at newlines into ~4 KB documents.
function chunks(text) {
  const res = [];
  let i = 0;
  while (i < text.length) {
    let j = text.indexOf("\n", i + 4000);
    if (j < 0) j = text.length;
    res.push(text.slice(i, j + 1));
    i = j + 1;
  }
  return res;
}
const P = chunks(prose), C = chunks(code), M = chunks(multi);
console.error(`sources: prose ${P.length}, code ${C.length}, multilingual ${M.length} chunks of ~4 KB`);
const fd = fs.openSync(out, "w");
let bytes = 0, k = 0;
while (bytes < target) {
  const pick = k % 10 < 4 ? P[k % P.length] : k % 10 < 8 ? C[k % C.length] : M[k % M.length];
  k++;
  fs.writeSync(fd, JSON.stringify({ text: pick }) + "\n");
  bytes += Buffer.byteLength(pick);
}
fs.closeSync(fd);
console.error(`corpus ${out}: ${k} documents, ${(bytes / 1e6).toFixed(1)} MB`);
