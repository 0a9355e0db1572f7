// Sync a tree with progress, change one file, sync again: the second run sends only the change.
import { appendFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sync } from 'deltasync';

const work = await mkdtemp(join(tmpdir(), 'deltasync-example-'));
const src = join(work, 'src');
const dest = join(work, 'dest');
await mkdir(join(src, 'docs'), { recursive: true });
await writeFile(join(src, 'big.bin'), randomBytes(8 * 1024 * 1024));
await writeFile(join(src, 'docs', 'notes.txt'), 'hello\n');

const onProgress = (p) => {
  if (p.fileDone) console.log(`  ${p.path}: ${p.fileSize} bytes (${p.filesDone}/${p.filesTotal} files)`);
};

// A trailing slash means "the contents of src", as with rsync.
let stats = await sync(`${src}/`, dest, { archive: true, onProgress });
console.log(`first run: ${stats.filesTransferred} files, ${stats.literalBytes} literal bytes`);

await appendFile(join(src, 'big.bin'), 'one more line\n');
// Locally, whole files are copied (like rsync); wholeFile: false sends a delta as over ssh.
stats = await sync(`${src}/`, dest, { archive: true, wholeFile: false, onProgress });
console.log(`second run: ${stats.filesTransferred} file, ${stats.literalBytes} literal bytes, ${stats.matchedBytes} matched`);
console.log(`destination: ${dest}`);
