// The request-id scheme lives in packages/policy/src/request-id.ts (one scheme for every service);
// this keeps the gateway's older import path working.
export { fastUlid, requestIdFor } from '@tollgate/policy';
