// Accounts: the view callers get, lookups by identifier, and the username rule.
import type { Transaction } from "sequelize";
import { whereLower, type Models, type User } from "../store/index.js";
import type { Identifier } from "./identifiers.js";

export interface UserView {
  id: string;
  username: string;
  email: string;
  phoneNumber: string;
  isActive: boolean;
  isStaff: boolean;
  dateJoined: Date;
  lastLogin: Date | null;
}

export const USERNAME = /^[A-Za-z0-9._]{3,30}$/;

export function toUserView(u: User): UserView {
  return {
    id: u.id,
    username: u.username,
    email: u.email ?? "",
    phoneNumber: u.phoneNumber ?? "",
    isActive: u.isActive,
    isStaff: u.isStaff,
    dateJoined: u.dateJoined,
    lastLogin: u.lastLogin,
  };
}

/** The account owning a normalised identifier, if any. */
export function findByIdentifier(models: Models, id: Identifier, transaction?: Transaction): Promise<User | null> {
  return models.User.findOne({ where: id.kind === "email" ? whereLower("email", id.value) : { phoneNumber: id.value }, transaction });
}
