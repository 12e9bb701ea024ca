import { markerRoutes } from '../../../../lib/marker';

export const dynamic = 'force-dynamic';
export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = markerRoutes('/api/cache/events');
