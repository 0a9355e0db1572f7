// Public entry point of the deltasync package.
export { DeltaSyncError, exitCodeFor } from './errors.js';
export type { ErrorCode, DeltaSyncErrorOptions } from './errors.js';
export type { Format, SignatureOptions, SignatureParams, RollingKind, StrongKind } from './params.js';
export { Signature, signature, createSignatureStream, signatureFile } from './signature.js';
export type { Input, SignatureInit } from './signature.js';
export type { AtomicFileOptions } from './io.js';
export { delta, createDeltaStream, deltaFile } from './delta.js';
export type { DeltaStats, DeltaResult } from './delta.js';
export { patch, createPatchStream, patchFile } from './patch.js';
export type { Basis, BasisReader, PatchStats, PatchResult } from './patch.js';
export { SignatureCache, SignatureRecorder, defaultCacheDir, acceptableParams, DEFAULT_CACHE_MAX_BYTES } from './sigcache.js';
export type { FileIdentity, SignatureCacheOptions, LookupOptions, SignatureCacheCounters, SignatureKinds, RecorderBasis, StoreOptions } from './sigcache.js';
export { copyRange, copyFileRange, cloneFileRange } from './fileops.js';
export type { CopyRangeOptions, CopyRangeResult, CopyMethod, FileRef } from './fileops.js';
export * from './sync/index.js';
