// make_fuzz_golden.js TOKENIZER.json OUT.jsonl [N] [SEED]: random adversarial texts with HF tokenizers'
// (npm "tokenizers") ids and decode, in the golden format {text, ids, decoded}. Half are made of
// tricky atoms (contractions in any case, Unicode spaces, combining marks, Hangul, added tokens and
// their fragments, long runs), half of random code points from every plane. Check with
// `csft tokenize --tokenizer DIR --check OUT.jsonl`. tests/fixtures/tokenizer/qwen_fuzz.jsonl came
// from: node make_fuzz_golden.js tests/fixtures/tokenizer/qwen/tokenizer.json qwen_fuzz.jsonl 800 1
const fs = require("fs");
const { Tokenizer } = require("tokenizers");
let seed = Number(process.argv[5] || 1);
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const atoms = ["hello", "World", "THE", "don't", "it'S", "WE'LL", "I'm", "you'VE", "'d", "'", "''", "123", "4567890", "3.14", "x1", "_", "__init__",
  " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\u00a0", "\u3000", "\u180e", "\u0085", "\u2028", "\u2029", "\u200b", "\ufeff", "\u000b", "\u000c",
  "e\u0301", "\u0301", "a\u0308\u0304", "\u1100\u1161\u11a8", "\uac00\u11a8", "\u212b", "\u2126", "\ufb01", "\uff0c", "\uff21", "\u2167",
  "中文", "日本語のテキスト", "\u304b\u3099", "한국어", "Привет", "Ελληνικά", "العربية", "עברית", "हिन्दी", "ไทย",
  "😀", "👩‍❤️‍💋‍👨", "🏳️‍🌈", "\ud834\udd1e", "\ue000", "\ufffd",
  "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<|im_", "<|begin_of_text|>", "<|eot_id|>", "<tool_call>", "<|",
  "!!!", "...", "…", "—", "«»", "#", "{", "}", "()", "=>", "->", "==", "//", "/*", "*/", "\\", "\"", "`", "$", "%", "@", "~",
  "ſ", "K", "İ", "ǅ", "ß", "ﬀ"];
function cp() {
  const r = rnd();
  let c;
  if (r < 0.3) c = 0x20 + Math.floor(rnd() * 0x5f);
  else if (r < 0.5) c = 0x80 + Math.floor(rnd() * 0x780);
  else if (r < 0.8) c = 0x800 + Math.floor(rnd() * 0xf800);
  else c = 0x10000 + Math.floor(rnd() * 0x30000);
  if (c >= 0xd800 && c < 0xe000) c = 0x41;
  return String.fromCodePoint(c);
}
(async () => {
  const tk = Tokenizer.fromFile(process.argv[2]);
  const out = fs.openSync(process.argv[3], "w");
  const total = Number(process.argv[4] || 800);
  for (let n = 0; n < total; n++) {
    let t = "";
    if (n < total / 2) {
      const k = 1 + Math.floor(rnd() * 30);
      for (let i = 0; i < k; i++) t += rnd() < 0.1 ? pick(atoms).repeat(1 + Math.floor(rnd() * 40)) : pick(atoms);
    } else {
      const k = 1 + Math.floor(rnd() * 40);
      for (let i = 0; i < k; i++) t += rnd() < 0.15 ? " " : cp();
    }
    const ids = (await tk.encode(t, null, { addSpecialTokens: false })).getIds();
    fs.writeSync(out, JSON.stringify({ text: t, ids, decoded: await tk.decode(ids, false) }) + "\n");
  }
  fs.closeSync(out);
})();
