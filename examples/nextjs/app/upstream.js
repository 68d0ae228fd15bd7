export const UPSTREAM = process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8081';
