// What an admin does by hand, in the browser: an account with attributes,
// a guest invitation, the audit log, the access-policy simulator.
import assert from "node:assert/strict";
import { scenario, shot, signIn, step } from "./lib.mjs";

await scenario(async (browser) => {
  const admin = await signIn(browser, "admin", process.env.ENTENTE_ADMIN_PASSWORD);
  await admin.getByRole("link", { name: "Administration" }).click();

  step("create a user with attributes");
  const form = admin.locator("form", { has: admin.locator("#new-user") });
  await form.getByLabel("Username").fill("carol");
  await form.getByLabel("Password").fill("carol-password-long");
  await form.getByLabel("Attributes").fill("nation=FR\nclearance=secret");
  await form.getByRole("button", { name: "Save" }).click();
  const row = admin.locator('tr[data-user="carol"]');
  await row.waitFor();
  assert.match(await row.locator("textarea").inputValue(), /nation=FR/);

  step("change her attributes");
  await row.locator("textarea").fill("nation=DE");
  await Promise.all([
    admin.waitForResponse((r) => r.url().includes("/attributes") && r.status() === 200),
    row.getByRole("button", { name: "Save" }).click(),
  ]);

  step("invite a guest");
  await admin.getByRole("link", { name: "Guest invitations" }).click();
  await admin.getByLabel("Guest policy").fill("liaison");
  await admin.getByLabel("Email").fill("officer@partner.example");
  await admin.getByRole("button", { name: "Invite" }).click();
  await admin.locator(".invitation code").waitFor();

  step("the audit log shows what was done");
  await admin.getByRole("link", { name: "Audit log" }).click();
  await admin.locator("table tbody tr").first().waitFor();
  await shot(admin, "admin-audit");

  step("the simulator answers");
  await admin.getByRole("link", { name: "Access simulator" }).click();
  await admin.getByLabel("Policy").fill("nation-gate");
  await admin.getByLabel("Expression").fill('user.nation == "FR"');
  await admin.getByLabel("Channel", { exact: true }).fill("ops");
  await admin.getByRole("button", { name: "Check" }).click();
  await admin.locator("div.card[role=status]").waitFor();
  await shot(admin, "admin-simulator");
});
