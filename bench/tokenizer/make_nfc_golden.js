// make_nfc_golden.js TOKENIZER.json OUT.jsonl: 4000 texts of random bases (letters, precomposed
// characters, Hangul jamo) and combining marks from every Unicode version, with HF tokenizers' (npm
// "tokenizers") ids and decode, in the golden format. It found that HF normalizes with Unicode 9.0
// tables (src/tok/pretok.c). tests/fixtures/tokenizer/qwen_nfc.jsonl holds the 194 lines that a plain
// utf8proc NFC got wrong plus the first 106 others (297 distinct lines).
const fs = require("fs");
const { Tokenizer } = require("tokenizers");
let seed = 5;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const marks = [], bases = [];
for (let c = 0x300; c < 0x20000; c++) {
  if (c >= 0xd800 && c < 0xe000) continue;
  const ch = String.fromCodePoint(c);
  if (/\p{M}/u.test(ch)) marks.push(ch);
  else if (ch.normalize("NFD") !== ch || /\p{L}/u.test(ch) && rnd() < 0.02) bases.push(ch);
}
for (const b of "aeiouAEIOUnNcCsSzZ") bases.push(b);
for (let c = 0x1100; c < 0x1200; c++) bases.push(String.fromCodePoint(c));
(async () => {
  const tk = Tokenizer.fromFile(process.argv[2]);
  const out = [];
  for (let n = 0; n < 4000; n++) {
    let t = "";
    const k = 1 + Math.floor(rnd() * 8);
    for (let i = 0; i < k; i++) {
      t += bases[Math.floor(rnd() * bases.length)];
      const m = Math.floor(rnd() * 4);
      for (let j = 0; j < m; j++) t += marks[Math.floor(rnd() * marks.length)];
      if (rnd() < 0.3) t += " ";
    }
    const ids = (await tk.encode(t, null, { addSpecialTokens: false })).getIds();
    out.push(JSON.stringify({ text: t, ids, decoded: await tk.decode(ids, false) }));
  }
  fs.writeFileSync(process.argv[3], out.join("\n") + "\n");
})();
