// The users the bench seeds and signs in: user i (1 … population) has the phone number
// +1555 followed by i on seven digits, a test identifier of the bench's service, which signs
// in with the fixed code below instead of a delivered one.
export const TEST_PHONE_PREFIX = "+1555";
export const BENCH_OTP_CODE = "424242";
export const MAX_USERS = 9_999_999;

export const phoneOf = (user: number): string => `${TEST_PHONE_PREFIX}${String(user).padStart(7, "0")}`;
