import { NextResponse } from 'next/server';
export function proxy(request) {
  const res = NextResponse.next();
  res.headers.set('x-unseen-proxy', '1');
  return res;
}
export const config = { matcher: ['/((?!_next/static|_next/image|favicon.ico).*)'] };
