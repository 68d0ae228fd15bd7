// Next.js's revalidation functions, traced by @nextrace/next: each call becomes a span that
// nextrace's revalidation panels show (which tag or path, from which route, how).
import { traceRevalidations } from '@nextrace/next/revalidation';
import * as nextCache from 'next/cache';

export const { revalidateTag, revalidatePath } = traceRevalidations(nextCache);
