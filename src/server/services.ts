// The services this server publishes, in one place: the router, reflection, the REST
// gateway and the OpenAPI document all read this list.
import type { DescFile, DescService } from "@bufbuild/protobuf";
import { AccountService, file_identity_v1_account } from "../../gen/identity/v1/account_pb.js";
import { AdminService, file_identity_v1_admin } from "../../gen/identity/v1/admin_pb.js";
import { file_identity_v1_auth, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { file_identity_v1_device, DeviceService } from "../../gen/identity/v1/device_pb.js";
import { file_identity_v1_kyc, KycService } from "../../gen/identity/v1/kyc_pb.js";
import { file_identity_v1_points, PointsService } from "../../gen/identity/v1/points_pb.js";
import { file_identity_v1_profile, ProfileService } from "../../gen/identity/v1/profile_pb.js";

/** The product API (package identity.v1). */
export const apiServices: DescService[] = [UserAuthService, ProfileService, KycService, DeviceService, PointsService, AccountService, AdminService];

/** Files of the product API; reflection adds their dependencies. */
export const apiFiles: DescFile[] = [file_identity_v1_auth, file_identity_v1_profile, file_identity_v1_kyc, file_identity_v1_device, file_identity_v1_points, file_identity_v1_account, file_identity_v1_admin];
