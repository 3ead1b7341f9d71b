// A guest signs in and sees exactly the channels their policy grants: no
// others in the sidebar, none to browse, and none by address.
import assert from "node:assert/strict";
import { openChannel, say, scenario, shot, signIn, step } from "./lib.mjs";

await scenario(async (browser) => {
  const guest = await signIn(browser, "liaison", "guest-password-long");
  step("the sidebar lists only the granted channel");
  const names = await guest.locator("nav.sidebar a[data-channel]").evaluateAll((as) => as.map((a) => a.dataset.channel));
  assert.deepEqual(names, ["ops"]);

  step("browsing shows no other public channel");
  await guest.getByRole("link", { name: "Browse channels" }).click();
  await guest.getByText("No other public channels.").waitFor();

  step("another channel by its address is refused");
  await guest.goto(`${process.env.ENTENTE_URL}/#/c/${process.env.ENTENTE_SECRET_CHANNEL}`);
  await guest.locator(".toast").waitFor();
  assert.equal(await guest.locator("#channel-title").count(), 0);
  assert.equal(await guest.getByText("Not for guests").count(), 0);
  await guest.locator(".toast button").click();

  step("the granted channel works, and members see the guest marked as one");
  await openChannel(guest, "ops");
  await say(guest, "Liaison checking in");
  const member = await signIn(browser, "alice", "alice-password-long");
  await openChannel(member, "ops");
  const post = member.locator(".history article.post", { hasText: "Liaison checking in" });
  await post.waitFor();
  await post.locator(".tag.guest").waitFor();
  await member.getByRole("button", { name: "Members" }).click();
  await member.locator('aside.panel li[data-member="liaison"] .tag.guest').waitFor();
  await shot(member, "guest-in-members");
  await shot(guest, "guest-view");
});
