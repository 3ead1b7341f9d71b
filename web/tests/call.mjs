// Two browsers in a channel's call through entente-sfu: each receives the
// other's audio (Chromium's fake microphone: a beep), sees who is in the
// call, and one shares a screen the other sees.
import assert from "node:assert/strict";
import { openChannel, scenario, shot, signIn, step, until } from "./lib.mjs";

async function heard(page, from) {
  const remote = page.locator(`.callbar li.remote[data-remote="${from}"]`);
  await remote.waitFor({ timeout: 20000 });
  return until(
    `${from}'s audio to arrive`,
    async () => {
      const bytes = Number(await remote.getAttribute("data-bytes"));
      const level = Number(await remote.getAttribute("data-level"));
      return bytes > 2000 && level > 0 ? { bytes, level } : false;
    },
    20000,
  );
}

await scenario(async (browser) => {
  const alice = await signIn(browser, "alice", "alice-password-long");
  const bob = await signIn(browser, "bob", "bob-password-long");
  await openChannel(alice, "ops");
  await openChannel(bob, "ops");

  step("alice starts the call; bob is told and joins");
  await alice.getByRole("button", { name: /Start a call/ }).click();
  await bob.getByRole("button", { name: /Join the call/ }).waitFor({ timeout: 15000 });
  await bob.getByText(/In the call: Alice/).waitFor();
  await bob.getByRole("button", { name: /Join the call/ }).click();

  step("each hears the other through the SFU");
  const atBob = await heard(bob, "alice");
  const atAlice = await heard(alice, "bob");
  console.log(`bob received ${atBob.bytes} bytes of alice's audio (level ${atBob.level}); alice ${atAlice.bytes} of bob's (level ${atAlice.level})`);
  await alice.getByText(/In the call: (Alice, Bob|Bob, Alice)/).waitFor();

  step("alice shares her screen; bob sees it");
  await alice.getByRole("button", { name: "Share screen" }).click();
  const video = bob.locator('.callbar li.remote[data-remote="alice"] video');
  await video.waitFor({ timeout: 20000 });
  await until("the shared screen's frames", () => video.evaluate((v) => v.videoWidth > 0), 20000);
  await shot(bob, "call");

  step("bob leaves; alice sees him go");
  await bob.getByRole("button", { name: "Leave the call" }).click();
  await until("bob to leave", async () => !(await alice.locator('.callbar li.remote[data-remote="bob"]').count()), 15000);
  await alice.getByRole("button", { name: "Leave the call" }).click();
  await bob.locator('.callbar[data-call="none"]').waitFor({ timeout: 15000 });
});
