// ProfileService: maps messages to the profile and usage-statistics domains and back,
// nothing else.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  GetProfileResponseSchema,
  GetUsageStatsResponseSchema,
  ProfileService,
  UpdateProfileResponseSchema,
  UserProfileSchema,
  type UserProfile,
} from "../../gen/identity/v1/profile_pb.js";
import type { Profile, ProfileDomain } from "../domain/profiles.js";
import type { UsageStatsDomain } from "../domain/usage-stats.js";
import { authedCallerOf } from "../server/calls/context.js";
import { optionalTimestamp } from "./convert.js";
import { kycStatusToProto } from "./kyc.js";

export interface ProfileRpcDeps {
  profiles: ProfileDomain;
  usageStats: UsageStatsDomain;
}

export function profileMessage(profile: Profile): UserProfile {
  return create(UserProfileSchema, {
    fullName: profile.fullName ?? "",
    dateOfBirth: profile.dateOfBirth ?? "",
    address: profile.address ?? "",
    avatarUrl: profile.avatarUrl ?? "",
    isProfileComplete: profile.isProfileComplete,
    updatedAt: optionalTimestamp(profile.updatedAt),
  });
}

export function createProfileServiceImpl({ profiles, usageStats }: ProfileRpcDeps): ServiceImpl<typeof ProfileService> {
  return {
    async getProfile(_req, ctx) {
      return create(GetProfileResponseSchema, { profile: profileMessage(await profiles.get(authedCallerOf(ctx))) });
    },
    async updateProfile(req, ctx) {
      // Absent optional fields stay undefined: the domain changes only the fields present.
      const profile = await profiles.update(authedCallerOf(ctx), {
        fullName: req.fullName,
        dateOfBirth: req.dateOfBirth,
        address: req.address,
        avatarUrl: req.avatarUrl,
      });
      return create(UpdateProfileResponseSchema, { profile: profileMessage(profile) });
    },
    async getUsageStats(_req, ctx) {
      const stats = await usageStats.get(authedCallerOf(ctx));
      return create(GetUsageStatsResponseSchema, {
        totalLogins: stats.totalLogins,
        activeSessions: stats.activeSessions,
        activeDevices: stats.activeDevices,
        lastLogin: optionalTimestamp(stats.lastLogin),
        lastActivity: optionalTimestamp(stats.lastActivity),
        accountAgeDays: stats.accountAgeDays,
        profileCompleteness: stats.profileCompleteness,
        kycStatus: kycStatusToProto(stats.kycStatus),
        pointsEarned: stats.pointsEarned,
        pointsSpent: stats.pointsSpent,
        dailyActivity: stats.dailyActivity,
      });
    },
  };
}
