// node bench/images-sharp.js SRC OUT FORMAT WIDTH [QUALITY]: one sharp render,
// concurrency(1), cache off, EXIF rotate, no enlargement; prints render
// wall and CPU time and whole-process time as JSON. Used by bench/images.sh.
const t0 = process.hrtime.bigint();
const sharp = require('sharp');
sharp.concurrency(1);
sharp.cache(false);
const [src, out, fmt, width, q] = process.argv.slice(2);
const opts = q ? { quality: Number(q) } : {};
(async () => {
  const c1 = process.cpuUsage();
  const t1 = process.hrtime.bigint();
  const info = await sharp(src).rotate().resize({ width: Number(width), withoutEnlargement: true })[fmt](opts).toFile(out);
  const t2 = process.hrtime.bigint();
  const c2 = process.cpuUsage(c1);
  console.log(JSON.stringify({ render_ms: Number(t2 - t1) / 1e6, render_cpu_ms: (c2.user + c2.system) / 1e3, process_ms: Number(t2 - t0) / 1e6, width: info.width, height: info.height, size: info.size }));
})();
