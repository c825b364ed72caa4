// Subject bindings (ADR 0028): a JWT subject or OAuth client bound to a consumer and subscription,
// stored and published as a key whose hash comes from the subject. Update and revoke it as a key.
import { z } from 'zod';
import { subjectBindingHash } from '@tollgate/policy';
import { ServiceError, type ServiceContext } from '../shared/context';
import { isUniqueViolation, parseInput } from '../shared/validation';
import { IssueKeyInput, issueKey } from './keys';

export const BindSubjectInput = IssueKeyInput.extend({
  /** The claim value (`sub`, `client_id`, …) the API's consumer claim will carry. */
  subject: z
    .string({ error: 'must be text' })
    .min(1, 'is required')
    .max(256, 'must be at most 256 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
}).strict();

/** Binds a subject; 409 when it is bound already (revoke that binding first). */
export async function bindSubject(ctx: ServiceContext, input: unknown) {
  const { subject, ...rest } = parseInput(BindSubjectInput, input);
  const prefix = `sub:${subject.length > 40 ? `${subject.slice(0, 39)}…` : subject}`;
  try {
    const { key } = await issueKey(ctx, rest, { hash: subjectBindingHash(ctx.tenantId, subject), prefix });
    return { key, subject };
  } catch (err) {
    if (isUniqueViolation(err)) throw new ServiceError('conflict', 'this subject is bound already', { subject: 'is bound already' });
    throw err;
  }
}
