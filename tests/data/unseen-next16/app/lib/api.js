export const API = process.env.API_URL || 'http://127.0.0.1:4100';
