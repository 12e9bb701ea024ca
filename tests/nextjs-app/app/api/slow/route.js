import { writeFileSync } from 'node:fs';
import { after } from 'next/server';

export const dynamic = 'force-dynamic';

// Answers after `ms` milliseconds; once the response is sent, an `after()` callback waits another
// `after_ms` and writes AFTER_MARKER_FILE: the SIGTERM test checks it exists once the server exited.
export async function GET(request) {
  const url = new URL(request.url);
  const ms = Number(url.searchParams.get('ms') ?? 1000);
  const afterMs = Number(url.searchParams.get('after_ms') ?? 300);
  await new Promise((resolve) => setTimeout(resolve, ms));
  after(async () => {
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    if (process.env.AFTER_MARKER_FILE) writeFileSync(process.env.AFTER_MARKER_FILE, `after ${Date.now()}\n`);
  });
  return new Response('slow done', { headers: { 'content-type': 'text/plain' } });
}
