// The stream forms, for data that is not in a file yet (a socket, a pipe, a download).
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Signature, createSignatureStream, createDeltaStream, createPatchStream } from 'deltasync';

const dir = await mkdtemp(join(tmpdir(), 'deltasync-example-'));
const file = (name) => join(dir, name);
const oldData = randomBytes(2 * 1024 * 1024);
await writeFile(file('old.bin'), oldData);
await copyFile(file('old.bin'), file('new.bin'));
await writeFile(file('new.bin'), 'changed!', { flag: 'r+' }); // overwrite the first 8 bytes

// Signature of a stream. Give fileSize when you know it: the default block length depends on it.
await pipeline(createReadStream(file('old.bin')), createSignatureStream({ fileSize: oldData.length }), createWriteStream(file('old.sig')));

// Delta: new data in, delta out; memory stays O(signature + one chunk) whatever the file size.
const sig = await Signature.read(file('old.sig'));
const deltaStream = createDeltaStream(sig);
await pipeline(createReadStream(file('new.bin')), deltaStream, createWriteStream(file('new.delta')));
console.log(`delta: ${deltaStream.stats.literalBytes} literal bytes, ${deltaStream.stats.matchedBytes} matched`);

// Patch: delta in, new data out. Bytes leave before the final hash check; on a mismatch the
// stream fails with ERR_HASH_MISMATCH (use patchFile to keep only verified output).
const patchStream = createPatchStream(file('old.bin'));
await pipeline(createReadStream(file('new.delta')), patchStream, createWriteStream(file('rebuilt.bin')));
console.log(`patch: ${patchStream.stats.outBytes} bytes written to ${file('rebuilt.bin')}`);
