// The three browser engines our users meet, as the tests drive them, each from its Debian package:
//   chromium  Debian's chromium, through playwright-core (tools/chromium.mjs)
//   firefox   Debian's firefox-esr, headless, over WebDriver BiDi through puppeteer-core
//   webkit    WebKitGTK's MiniBrowser (the engine family of Safari) through WebKitWebDriver and
//             selenium-webdriver, in an Xvfb display of its own (MiniBrowser has no headless mode)
// Each launch gives { name, open(url), evaluate(fn, arg), close() }: evaluate runs an async
// function in the page and resolves with its (JSON) result, or rejects with the page's error.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

import { CHROMIUM, launchChromium } from './chromium.mjs';

export const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';
export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER ?? '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const XVFB = '/usr/bin/Xvfb';

/** The engines this machine has, by name, with the Debian package each needs when it lacks one. */
export const ENGINES = {
  chromium: { has: () => existsSync(CHROMIUM), packages: 'chromium' },
  firefox: { has: () => existsSync(FIREFOX), packages: 'firefox-esr' },
  webkit: { has: () => existsSync(WEBKIT_DRIVER) && existsSync(MINIBROWSER) && existsSync(XVFB), packages: 'webkit2gtk-driver xvfb' },
};

// The page's result, or its error as ours (the drivers report page errors each their own way;
// WebKit's stack leaves the message out, so it is added).
/** @param {Function | string} fn */
const wrap = (fn) =>
  `async (arg) => { try { return { ok: await (${fn})(arg) }; } catch (e) { const s = String(e?.stack ?? e); return { error: s.includes(String(e?.message)) ? s : String(e?.name) + ': ' + String(e?.message) + ' ' + s }; } }`;
/** @param {any} r */
const unwrap = (r) => {
  if (r?.error) throw new Error(`in the page: ${r.error}`);
  return r?.ok;
};

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/** @param {string} what @param {() => Promise<unknown> | unknown} f @param {number} [ms] */
async function until(what, f, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch {}
    if (Date.now() > end) throw new Error(`${what}: not ready after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A playwright or puppeteer browser and page (their page APIs agree on what is used here).
 * @param {string} name @param {any} browser
 */
async function driven(name, browser) {
  const page = await browser.newPage();
  return {
    name,
    open: (/** @type {string} */ url) => page.goto(url).then(() => {}),
    evaluate: async (/** @type {Function | string} */ fn, /** @type {unknown} */ arg) =>
      unwrap(await page.evaluate(`(${wrap(fn)})(${JSON.stringify(arg ?? null)})`)),
    close: () => browser.close(),
  };
}

async function chromium() {
  return driven('chromium', await launchChromium());
}

async function firefox() {
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    protocolTimeout: 600_000, // a long upscale in the page is one call
    // No updates, telemetry or remote settings: the machine has no internet.
    extraPrefsFirefox: { 'app.update.enabled': false, 'browser.safebrowsing.malware.enabled': false, 'network.dns.disableIPv6': true },
  });
  return driven('firefox', browser);
}

// WebKitGTK's MiniBrowser has been seen (once in about ten runs of the suites) to lose its
// session at the first call on a page ("Could not parse script result", then "no such session"):
// then the browser is started again, the page opened again and the call made once more, with a
// line saying so. A page that crashes it every time still fails.
async function webkit() {
  const { Builder } = /** @type {any} */ (await import(/** @type {string} */ ('selenium-webdriver')));
  const start = async () => {
    const display = `:${90 + (process.pid % 400)}`;
    const xvfb = spawn(XVFB, [display, '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
    const port = await freePort();
    const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`], { stdio: 'ignore', env: { ...process.env, DISPLAY: display } });
    const stop = () => {
      driver.kill();
      xvfb.kill();
    };
    try {
      const server = `http://127.0.0.1:${port}`;
      await until('WebKitWebDriver', async () => (await fetch(`${server}/status`)).ok);
      const session = await new Builder()
        .usingServer(server)
        .withCapabilities({ browserName: 'MiniBrowser', 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } })
        .build();
      await session.manage().setTimeouts({ script: 600000, pageLoad: 60000 });
      return { session, stop };
    } catch (e) {
      stop();
      throw e;
    }
  };
  let current = await start();
  /** @type {string | null} */
  let url = null;
  const lost = (/** @type {any} */ e) => e?.name === 'NoSuchSessionError' || /Could not parse script result/.test(e?.message ?? '');
  const restart = async (/** @type {any} */ e) => {
    console.log(`webkit: the session was lost (${e.name}: ${e.message}); starting MiniBrowser again`);
    await current.session.quit().catch(() => {});
    current.stop();
    current = await start();
    if (url) await current.session.get(url);
  };
  const call = (/** @type {Function | string} */ fn, /** @type {unknown} */ arg) =>
    current.session.executeAsyncScript(`const done = arguments[arguments.length - 1]; (${wrap(fn)})(arguments[0]).then(done);`, arg ?? null);
  return {
    name: 'webkit',
    open: async (/** @type {string} */ to) => {
      url = to;
      await current.session.get(to).catch(async (/** @type {any} */ e) => {
        if (!lost(e)) throw e;
        await restart(e);
      });
    },
    evaluate: async (/** @type {Function | string} */ fn, /** @type {unknown} */ arg) => {
      try {
        return unwrap(await call(fn, arg));
      } catch (e) {
        if (!lost(e)) throw e;
        await restart(e);
        return unwrap(await call(fn, arg));
      }
    },
    close: async () => {
      await current.session.quit().catch(() => {});
      current.stop();
    },
  };
}

/** @param {'chromium' | 'firefox' | 'webkit'} name */
export function launch(name) {
  return { chromium, firefox, webkit }[name]();
}
