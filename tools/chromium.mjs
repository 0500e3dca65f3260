// Debian's Chromium, headless, as the tests and benchmarks start it: with the flags a machine
// without internet needs (without the background-networking ones, Chromium's connections are
// refused many at a time). playwright gives every launch a new, empty profile directory.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** @param {string[]} [extraArgs] */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}
