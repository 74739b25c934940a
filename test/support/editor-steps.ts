// Steps in the Node-RED editor (headless Chromium) that editor tests share: open a node's dialog, confirm it,
// wait for notifications, press an inject button.
import type { Page } from 'playwright-core';

export function nodeIdOfType(page: Page, type: string): Promise<string> {
  return page.evaluate((t: string) => {
    let id = '';
    (globalThis as any).RED.nodes.eachNode((n: any) => {
      if (n.type === t) id = n.id;
    });
    return id;
  }, type);
}

/** Opens a node's edit dialog, as a double-click does (a notification may cover the node itself). */
export async function openNode(page: Page, type: string): Promise<void> {
  // An import lands asynchronously: on a loaded machine the node may not exist yet.
  await page.waitForFunction(
    (t: string) => {
      let found = false;
      (globalThis as any).RED.nodes.eachNode((n: any) => {
        found ||= n.type === t;
      });
      return found;
    },
    type,
    { timeout: 60_000 },
  );
  const id = await nodeIdOfType(page, type);
  await page.evaluate((nodeId: string) => {
    const RED = (globalThis as any).RED;
    RED.editor.edit(RED.nodes.node(nodeId));
  }, id);
  await page.waitForSelector('#node-dialog-ok', { state: 'visible', timeout: 60_000 });
}

/** Presses a dialog's button and waits until its tray has closed (the editor opens no other dialog meanwhile). */
export async function confirm(page: Page, button: string): Promise<void> {
  await page.click(button);
  await page.waitForSelector(button, { state: 'hidden' });
}

/** Waits until no notification (imported, deployed…) lies over the workspace. */
export function notificationsGone(page: Page): Promise<unknown> {
  return page.waitForFunction(() => (globalThis as any).$('.red-ui-notification:visible').length === 0, undefined, { timeout: 30_000 });
}

/**
 * Clicks an inject node's button until Node-RED confirms it ("Successfully injected"): on a loaded machine the
 * workspace can still be moving (sidebar switch) when the click lands.
 */
export async function pressInject(page: Page, id: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    await notificationsGone(page);
    await page.click(`g[id="${id}"] .red-ui-flow-node-button`);
    const confirmed = await page
      .waitForFunction(() => /Successfully injected/.test((globalThis as any).$('.red-ui-notification').text()), undefined, { timeout: 5_000 })
      .then(
        () => true,
        () => false,
      );
    if (confirmed) return;
  }
  throw new Error('the inject button never confirmed an injection');
}

/** Import ▸ Examples ▸ node-red-contrib-llava ▸ `name`, dropped on the workspace. */
export async function importExample(page: Page, name: string): Promise<void> {
  await page.evaluate(() => (globalThis as any).RED.actions.invoke('core:show-import-dialog'));
  await page.click('#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a');
  await page.click('#red-ui-clipboard-dialog-import-tab-examples .red-ui-treeList-label:has-text("node-red-contrib-llava")');
  await page.click(`#red-ui-clipboard-dialog-import-tab-examples .red-ui-treeList-label:has-text("${name}")`);
  await confirm(page, '#red-ui-clipboard-dialog-ok');
  await page.mouse.click(400, 300);
}

/**
 * The caption example's last steps: point its file node at `image`, deploy, wait for llm generate's
 * "ready (cpu)", press inject, and return the caption the debug sidebar shows. `log` adds Node-RED's log to a timeout.
 */
export async function deployAndCaption(page: Page, image: string, log: () => string): Promise<string> {
  await openNode(page, 'file in');
  await page.fill('.form-row:has(#node-input-filename) input.red-ui-typedInput-input', image);
  await confirm(page, '#node-dialog-ok');

  await page.click('#red-ui-header-button-deploy');
  await page.waitForFunction(() => !(globalThis as any).RED.nodes.dirty());
  const generateId = await nodeIdOfType(page, 'llava-generate');
  await page.waitForFunction((id: string) => /ready \(cpu\)/.test((globalThis as any).$(`g[id="${id}"] .red-ui-flow-node-status-label`).text()), generateId, {
    timeout: 60_000,
  });

  await page.evaluate(() => (globalThis as any).RED.sidebar.show('debug'));
  await pressInject(page, await nodeIdOfType(page, 'inject'));
  const caption = await page
    .waitForFunction(
      () => {
        const $ = (globalThis as any).$;
        const msg = $('.red-ui-debug-msg').filter((_: number, e: Element) => $(e).find('.red-ui-debug-msg-name').text().includes('caption'));
        return msg.length ? msg.first().find('.red-ui-debug-msg-payload').text() : false;
      },
      undefined,
      { timeout: 60_000 },
    )
    .catch(async (err: Error) => {
      const sidebar = await page.evaluate(() => (globalThis as any).$('.red-ui-debug-msg').text());
      throw new Error(`${err.message}\ndebug sidebar: ${sidebar}\nNode-RED log:\n${log().slice(-3000)}`);
    });
  return String(await caption.jsonValue());
}
