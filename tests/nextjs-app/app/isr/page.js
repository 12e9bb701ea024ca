import { unstable_cache } from 'next/cache';
import { nextRun } from '../../lib/counter';

// ISR: rendered on the first request, then served from the cache handler (Redis) for an hour, or
// until the tag `posts` is invalidated.
export const revalidate = 3600;

const posts = unstable_cache(
  async () => ({ run: nextRun(), at: new Date().toISOString() }),
  ['isr-posts'],
  { tags: ['posts'], revalidate: 3600 },
);

export default async function Page() {
  const data = await posts();
  return (
    <main>
      <p id="content">{`posts run=${data.run} at=${data.at}`}</p>
    </main>
  );
}
