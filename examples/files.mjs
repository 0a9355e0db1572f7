// The file forms: each output is written to a temporary file, fsynced and renamed into place,
// so a failure leaves nothing behind. The basis is read at random offsets, never loaded whole.
import { appendFile, copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signatureFile, deltaFile, patchFile } from 'deltasync';

const dir = await mkdtemp(join(tmpdir(), 'deltasync-example-'));
const [oldPath, newPath] = [join(dir, 'old.bin'), join(dir, 'new.bin')];
await writeFile(oldPath, randomBytes(4 * 1024 * 1024));
await copyFile(oldPath, newPath);
await appendFile(newPath, 'appended\n');

const sig = await signatureFile(oldPath, join(dir, 'old.sig'));
const stats = await deltaFile(join(dir, 'old.sig'), newPath, join(dir, 'new.delta'));
await patchFile(oldPath, join(dir, 'new.delta'), join(dir, 'rebuilt.bin'));

console.log(`block length ${sig.blockLen}, ${sig.blockCount} blocks`);
console.log(`${stats.matchedBytes} bytes matched, ${stats.literalBytes} literal`);
console.log(`files in ${dir}: old.bin old.sig new.bin new.delta rebuilt.bin`);
