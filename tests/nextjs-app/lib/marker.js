// The body every route handler that shadows a `knext serve` route answers: if a test ever reads it
// through knext serve, a request reached the app's own handler.
export const MARKER = 'NEXTJS-APP-HANDLER-REACHED';

// One handler for every method, answering the marker and what it saw.
export function markerRoutes(name) {
  const handler = (request) =>
    new Response(`${MARKER} ${name} ${request.method} ${new URL(request.url).pathname}\n`, {
      status: 200,
      headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' },
    });
  return {
    GET: handler,
    HEAD: handler,
    POST: handler,
    PUT: handler,
    PATCH: handler,
    DELETE: handler,
    OPTIONS: handler,
  };
}
