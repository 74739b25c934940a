// Editor code the LLaVA nodes share (Node-RED serves this folder at resources/node-red-contrib-llava/): the rows
// several edit dialogs have (model selector, typed properties, "while busy" queue, name) and their behaviour. Each
// node's .html keeps its own defaults, rows and help, and marks where a shared row goes:
//   <div data-llava-row="model"></div>        (data-class="…": more classes on the row)
//   <div data-llava-row="typed" data-property="input" data-icon="fa-sign-in" data-label="Pixels"></div>
//   <div data-llava-row="queue"></div>
//   <div data-llava-row="name"></div>
// It also draws the preview under image load and llm generate (nodes/shared/preview.ts sends it): their
// `button: LlavaEditor.previewButton()` switches it, and what arrives is drawn only while the node's switch is on.
/* global RED, $ */
(function () {
    'use strict';
    if (window.LlavaEditor) return;

    var TYPED = ['msg', 'flow', 'global'];
    var ORDINALS = ['first', 'second', 'third', 'fourth'];

    function escape(text) {
        return $('<div>').text(text).html();
    }

    var rows = {
        model: function (el) {
            return (
                '<div class="form-row ' +
                (el.attr('data-class') || '') +
                '"><label for="node-input-model"><i class="fa fa-cube"></i> Model</label>' +
                '<input type="text" id="node-input-model"></div>'
            );
        },
        typed: function (el) {
            var p = el.attr('data-property');
            return (
                '<div class="form-row"><label for="node-input-' +
                p +
                '"><i class="fa ' +
                el.attr('data-icon') +
                '"></i> ' +
                escape(el.attr('data-label')) +
                '</label>' +
                '<input type="text" id="node-input-' +
                p +
                '" style="width: 70%">' +
                '<input type="hidden" id="node-input-' +
                p +
                'Type"></div>'
            );
        },
        queue: function () {
            return (
                '<div class="form-row"><b>While busy</b></div>' +
                '<div class="form-row"><label for="node-input-queuePolicy"><i class="fa fa-random"></i> Policy</label>' +
                '<select id="node-input-queuePolicy" style="width: 70%">' +
                '<option value="latest">latest wins per msg.topic</option>' +
                '<option value="fifo">queue in order</option>' +
                '<option value="drop-new">drop new messages</option></select></div>' +
                '<div class="form-row llava-queue-length"><label for="node-input-queueLength"><i class="fa fa-bars"></i> Waiting</label>' +
                '<input type="text" id="node-input-queueLength" style="width: 80px">' +
                ' <span class="llava-hint">messages (latest: topics) at most</span></div>' +
                '<div class="form-row llava-queue-length"><label for="node-input-maxWait"><i class="fa fa-clock-o"></i> Wait limit</label>' +
                '<input type="text" id="node-input-maxWait" style="width: 80px" placeholder="none">' +
                ' <span class="llava-hint">seconds; a message waiting longer is dropped (timeout)</span></div>' +
                '<div class="form-row"><label for="node-input-dropped"><i class="fa fa-trash-o"></i> Dropped</label>' +
                '<select id="node-input-dropped" style="width: 70%">' +
                '<option value="status">count in the status</option>' +
                '<option value="output">send to an extra output</option>' +
                '<option value="error">report as an error (catch node)</option></select>' +
                '<input type="hidden" id="node-input-outputs"></div>'
            );
        },
        name: function () {
            return (
                '<div class="form-row"><label for="node-input-name"><i class="fa fa-tag"></i> Name</label>' +
                '<input type="text" id="node-input-name" placeholder="Name"></div>'
            );
        },
    };

    /** Replaces the shared-row marks in a node's edit template (Node-RED reads the template when a dialog opens). */
    function expandTemplate(type) {
        var template = $('script[data-template-name="' + type + '"]');
        if (template.length === 0) return false;
        var form = $('<div>').html(template.html());
        form.find('[data-llava-row]').each(function () {
            var el = $(this);
            el.replaceWith(rows[el.attr('data-llava-row')](el));
        });
        template.html(form.html());
        return true;
    }

    /** The node's own outputs: its definition's count without the dropped-message output. */
    function ownOutputs(node) {
        return node._def.outputs;
    }

    var PREVIEW_TOPIC = 'llava-preview';
    var SVG = 'http://www.w3.org/2000/svg';
    /** The latest preview per node id, in this page only (gone on reload). */
    var previews = {};

    function svg(tag, attrs, text) {
        var el = document.createElementNS(SVG, tag);
        Object.keys(attrs).forEach(function (a) {
            el.setAttribute(a, attrs[a]);
        });
        if (text !== undefined) el.textContent = text;
        return el;
    }

    function took(ms) {
        return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s';
    }

    /** Redraws one node's preview under it (below its status line), or removes it when the switch is off. */
    function drawPreview(id) {
        var group = document.getElementById(id);
        if (!group) return;
        $(group).children('.llava-preview').remove();
        var node = RED.nodes.node(id);
        var p = previews[id];
        if (!node || !node.preview || !p) return;
        var y = (node.h || 30) + 20;
        var preview = svg('g', { class: 'llava-preview' });
        if (p.image) {
            preview.appendChild(svg('image', { href: p.image, x: 0, y: y, width: p.width, height: p.height }));
            y += p.height + 4;
        }
        var lines = [new Date(p.at).toTimeString().slice(0, 8) + (p.ms !== undefined ? ' · ' + took(p.ms) : '')];
        if (p.text !== undefined) lines.push(p.text);
        lines.forEach(function (line) {
            y += 12;
            preview.appendChild(svg('text', { class: 'red-ui-flow-node-status-label llava-preview-text', x: 0, y: y }, line));
        });
        group.appendChild(preview);
    }

    RED.comms.subscribe(PREVIEW_TOPIC + '/#', function (topic, message) {
        var id = topic.slice(PREVIEW_TOPIC.length + 1);
        previews[id] = message;
        drawPreview(id);
    });
    // Another tab's nodes are drawn afresh when it is shown.
    RED.events.on('workspace:change', function () {
        setTimeout(function () {
            Object.keys(previews).forEach(drawPreview);
        }, 0);
    });

    window.LlavaEditor = {
        /**
         * Call next to RED.nodes.registerType: the template follows the definition in the .html, so it may not be
         * in the page yet; then it is expanded once the page has it (before any dialog can open).
         */
        template: function (type) {
            if (!expandTemplate(type))
                $(function () {
                    expandTemplate(type);
                });
        },

        /**
         * oneditprepare: typed properties (name → the types offered, default msg/flow/global) and, when the
         * definition has queue fields, the queue rows. Blank queue fields (a flow saved before the node had them)
         * show the definition's defaults, which the runtime also uses.
         */
        prepare: function (node, typed) {
            Object.keys(typed || {}).forEach(function (p) {
                $('#node-input-' + p).typedInput({ default: 'msg', types: typed[p] || TYPED, typeField: '#node-input-' + p + 'Type' });
            });
            if (!node._def.defaults.queuePolicy) return;
            var defaults = node._def.defaults;
            ['queuePolicy', 'queueLength', 'dropped'].forEach(function (f) {
                var input = $('#node-input-' + f);
                if (input.val() === '' || input.val() === null) input.val(defaults[f].value);
            });
            $('#node-input-dropped option[value="output"]').text('send to a ' + ORDINALS[ownOutputs(node)] + ' output');
            $('#node-input-queueLength').spinner({ min: 0, max: 1000 });
            var showLength = function () {
                $('.llava-queue-length').toggle($('#node-input-queuePolicy').val() !== 'drop-new');
            };
            $('#node-input-queuePolicy').on('change', showLength);
            showLength();
        },

        /** oneditsave: the dropped-message output, when chosen, comes after the node's own outputs. */
        save: function (node) {
            if (!node._def.defaults.queuePolicy) return;
            $('#node-input-outputs').val(ownOutputs(node) + ($('#node-input-dropped').val() === 'output' ? 1 : 0));
        },

        /**
         * The node's preview switch, as the debug node's button: it sets the `preview` property (deployed with the
         * flow) and tells the running node at once (POST llava-preview/:id/enable|disable).
         */
        previewButton: function () {
            return {
                toggle: 'preview',
                onclick: function () {
                    var node = this;
                    var on = node.preview;
                    var label = RED.utils.sanitize(RED.utils.getNodeLabel(node, node.type));
                    var changed = function () {
                        RED.history.push({ t: 'edit', node: node, changes: { preview: !on }, dirty: node.dirty, changed: node.changed });
                        node.changed = true;
                        node.dirty = true;
                        RED.nodes.dirty(true);
                        RED.view.redraw();
                    };
                    if (!on) drawPreview(node.id);
                    $.ajax({
                        url: PREVIEW_TOPIC + '/' + node.id + '/' + (on ? 'enable' : 'disable'),
                        type: 'POST',
                        success: function () {
                            changed();
                            RED.notify('Preview under ' + label + (on ? ' on' : ' off'), { type: 'success', timeout: 2000 });
                        },
                        error: function (xhr) {
                            if (xhr.status === 404) {
                                changed();
                                RED.notify('Preview under ' + label + (on ? ' on' : ' off') + ' once deployed', { type: 'warning', timeout: 3000 });
                                return;
                            }
                            node.preview = !on;
                            node.dirty = true;
                            RED.view.redraw();
                            RED.notify(
                                'Preview not switched: ' +
                                    (xhr.status ? 'the server said ' + xhr.status + ' ' + RED.utils.sanitize(xhr.statusText) : 'no response'),
                                'error',
                            );
                        },
                    });
                },
            };
        },

        /** outputLabels for a queued node: its own labels, then the dropped messages. */
        outputLabels: function (labels) {
            return function (i) {
                return labels.concat(['dropped messages'])[i];
            };
        },
    };
})();
