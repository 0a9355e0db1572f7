// signature / delta / patch on Buffers: the old side sends a signature, the new side answers
// with a delta, the old side patches. Only the signature and the delta would cross a network.
import { signature, delta, patch } from 'deltasync';

const oldData = Buffer.from('The quick brown fox jumps over the lazy dog. '.repeat(2000));
const newData = Buffer.concat([oldData.subarray(0, 50000), Buffer.from('NEW TEXT'), oldData.subarray(50000)]);

const sig = await signature(oldData); // deltasync format; { format: 'rdiff' } for librsync's
const sigBytes = sig.toBuffer(); // what you would send to the other side
const { delta: d, stats } = await delta(sigBytes, newData); // a Signature or its bytes
const { output } = await patch(oldData, d); // checked against the delta's result digest

console.log(`signature ${sigBytes.length} bytes, delta ${d.length} bytes for a ${newData.length}-byte file`);
console.log(`literal ${stats.literalBytes}, matched ${stats.matchedBytes}`);
console.log(`rebuilt equals new: ${output.equals(newData)}`);
