// The app tests/nextjs.rs runs behind `knext serve`. scripts/nextjs-test-app.sh copies knext's
// generated cache handler (generated/next/cache-handler.cjs) next to this file before `next build`.
module.exports = {
  output: 'standalone',
  cacheHandler: require.resolve('./cache-handler.cjs'),
  cacheMaxMemorySize: 0,
  // The build must not look above this directory for a workspace root or lockfile.
  outputFileTracingRoot: __dirname,
};
