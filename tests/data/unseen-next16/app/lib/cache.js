import { traceRevalidations } from '@nextrace/next/revalidation';
import * as nextCache from 'next/cache';
export const { revalidateTag, revalidatePath, updateTag } = traceRevalidations(nextCache);
