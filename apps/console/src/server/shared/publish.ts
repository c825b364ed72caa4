// The outbox writers live with the publishing path in @tollgate/db; every service that changes
// what the gateway sees calls one of them inside its own transaction.
export { enqueuePolicyPublish, enqueueKeyPublish } from '@tollgate/db';
