// A channel shared between two workspaces, each in its own browser: each
// side is told with whom it is shared, and a post in one appears, live, in
// the other, its author marked with their organisation.
import assert from "node:assert/strict";
import { openChannel, say, scenario, shot, signIn, step } from "./lib.mjs";

await scenario(async (browser) => {
  const alice = await signIn(browser, "alice", "alice-password-long", { url: process.env.ENTENTE_URL });
  const bob = await signIn(browser, "bob", "bob-password-long", { url: process.env.ENTENTE_PARTNER_URL });
  await openChannel(alice, "joint");
  await openChannel(bob, "joint-ops");

  step("each side says with whom the channel is shared");
  await alice.locator(".shared-banner", { hasText: "Shared with Bravo Org" }).waitFor();
  await bob.locator(".shared-banner", { hasText: "Shared with Alpha Org" }).waitFor();

  step("alice's post reaches bob's workspace and browser");
  await say(alice, "Convoy departs 1400, route **BLUE**");
  const arrived = bob.locator(".history article.post", { hasText: "Convoy departs 1400" });
  await arrived.waitFor({ timeout: 30000 });
  assert.equal(await arrived.locator(".tag.partner").textContent(), "Alpha Org");
  assert.equal(await arrived.locator("strong", { hasText: "BLUE" }).count(), 1);

  step("bob answers; alice sees it, marked as Bravo's");
  await say(bob, "Acknowledged, escort ready");
  const answer = alice.locator(".history article.post", { hasText: "Acknowledged, escort ready" });
  await answer.waitFor({ timeout: 30000 });
  assert.equal(await answer.locator(".tag.partner").textContent(), "Bravo Org");
  await shot(alice, "federation-alpha");
  await shot(bob, "federation-bravo");
});
