import { NextResponse } from 'next/server';

// A proxy (Next 16's name for middleware) that runs on every page and API request, as most
// apps' do: nextrace shows how much of its work goes to prefetches.
export default function proxy() {
  const response = NextResponse.next();
  response.headers.set('x-example-proxy', '1');
  return response;
}

export const config = {
  matcher: ['/((?!_next/static|_next/image|favicon.ico).*)'],
};
