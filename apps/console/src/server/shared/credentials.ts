// E-mail and password rules, the same for console users and portal developers.
import { z } from 'zod';

export const Email = z
  .string({ error: 'must be text' })
  .trim()
  .toLowerCase()
  .max(254, 'must be at most 254 characters')
  .email('must be a valid e-mail address');

export const Password = z
  .string({ error: 'must be text' })
  .min(10, 'must be at least 10 characters')
  .max(200, 'must be at most 200 characters');
