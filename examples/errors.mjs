// Every error deltasync throws on purpose is a DeltaSyncError with a stable code.
import { patch, signature, DeltaSyncError } from 'deltasync';

for (const attempt of [
  () => patch(Buffer.from('old data'), Buffer.from('not a delta')),
  () => signature('/nonexistent/file'),
]) {
  try {
    await attempt();
  } catch (err) {
    if (!(err instanceof DeltaSyncError)) throw err;
    console.log(`${err.code} (exit ${err.exitCode}): ${err.message}`);
  }
}
